# rules for the faithfulness stage (filled in by its issue)
