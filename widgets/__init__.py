"""Reusable Qt widgets for sdscope. They know sdmodel's data types, never the app."""
