"""Pure functions over the models: numbers and tables, no I/O, no presentation."""
