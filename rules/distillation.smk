# rules for the distillation stage (filled in by its issue)
