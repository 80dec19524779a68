"""Deadlines of every area of the relationships service (funding, competencies), kept so each change is
published once as `DeadlineChangedV1` with a version that grows per deadline."""
