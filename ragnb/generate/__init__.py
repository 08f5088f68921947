"""Local text generation: one small module per backend, all yielding `GenerationChunk`s."""

from ragnb.generate.base import Backend, GenerationChunk, SamplingParams

__all__ = ["Backend", "GenerationChunk", "SamplingParams"]
