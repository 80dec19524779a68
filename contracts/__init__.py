"""The only code that crosses service lines: event and command schemas, subjects, streams."""
