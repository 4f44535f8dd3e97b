"""Built-in stages: tracking, scene filter, audio (one module or package each)."""
