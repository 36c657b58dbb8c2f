"""generate stage: the guarded local generator.

``GuardedGenerator(settings.generate)`` -> ``.generate(prompt) -> Generation``; see generator.py.
"""

from rag.generate.generator import GenerationStream, GuardedGenerator

__all__ = ["GuardedGenerator", "GenerationStream"]
