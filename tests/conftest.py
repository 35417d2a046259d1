import os
import sys

# Test helpers (gaussian_prior, reference networks) live beside the tests.
sys.path.insert(0, os.path.dirname(__file__))
