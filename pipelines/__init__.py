"""Hardware profiles (TOML), shipped as package data."""
