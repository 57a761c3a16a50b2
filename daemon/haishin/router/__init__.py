"""From the spool to the commands: who a recipient is, whether to answer, what to do."""
