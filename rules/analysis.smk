# rules for the analysis stage (filled in by its issue)
