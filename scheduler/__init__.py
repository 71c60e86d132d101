"""Timetable model and matching (see issue 5)."""
