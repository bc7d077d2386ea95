"""ftlab: the library behind the rule scripts. Modules are imported directly (`from ftlab import tasks`)."""
