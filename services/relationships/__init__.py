"""The relationships service: contacts, interactions, funding programs, goals and the team's week."""
