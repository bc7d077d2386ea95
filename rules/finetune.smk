# rules for the finetune stage (filled in by its issue)
