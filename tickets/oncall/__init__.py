"""The on-call rota: who the emergency line rings, level by level, and when."""
