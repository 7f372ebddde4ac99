"""Model manifest and the weights lightseg trains itself (shipped as package data)."""
