"""The measured studies' harnesses (anytime: several solver configurations on one task, paired
image by image)."""
