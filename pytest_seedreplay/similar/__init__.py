"""Similar questions: a recorded answer for a reworded question, never for a different one."""
