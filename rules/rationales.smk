# rules for the rationales stage (filled in by its issue)
