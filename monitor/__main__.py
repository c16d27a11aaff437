from monitor.program import entry

entry()
