"""Recipes: one readable function per benchmark stage."""
