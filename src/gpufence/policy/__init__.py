"""The isolation policy shared by the planner and the controls."""
