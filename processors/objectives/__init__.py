"""Objectives: conversation goals with completion criteria, tracked turn by turn."""
