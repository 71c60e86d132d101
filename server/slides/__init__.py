"""Slides as documents: decks rendered once to images (store, render, convert, HTTP) and the
live page, pointer and ink of each room (board)."""
