// tos-monitor report: optional enhancements. Every page works without this file.
(function () {
  "use strict";

  // The view switch works with CSS alone (:has); the class also covers browsers without :has.
  var side = document.getElementById("view-side");
  function syncView() {
    document.body.classList.toggle("view-side", Boolean(side && side.checked));
  }
  if (side) {
    document.addEventListener("change", syncView);
    syncView();
  }

  // Keys n / p: next / previous changed passage on a change page.
  function typing(target) {
    var tag = target.tagName;
    if (target.isContentEditable || tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && !/^(radio|checkbox)$/i.test(target.type);
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    if (event.key !== "n" && event.key !== "p") return;
    var hunks = document.querySelectorAll(".hunk");
    if (!hunks.length) return;
    var now = window.scrollY + 24;
    var target = null;
    for (var i = 0; i < hunks.length; i++) {
      var top = hunks[i].getBoundingClientRect().top + window.scrollY;
      if (event.key === "n" && top > now && !target) target = hunks[i];
      if (event.key === "p" && top < now - 32) target = hunks[i];
    }
    if (!target) return;
    event.preventDefault();
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "start" });
    history.replaceState(null, "", "#" + target.id);
  });
})();
