"""The rules every provider's stream keeps, checked on a list of chunks."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from llm_sync import LlmResponse, StopReason

__all__ = ["turn_problems"]


def turn_problems(chunks: Sequence[Any], error: Optional[BaseException] = None) -> List[str]:
    """What ``chunks`` break of the turn rules (empty when none); ``error`` is what the stream raised.

    - ``Start`` once, first; ``Done`` once, last, with the final ``Usage`` (if any) just before;
    - a call's ``ToolRequestArg`` pieces come after its ``ToolRequestStart`` and before its
      ``ToolRequestComplete``, and concatenate to exactly ``tool_call.arguments``;
    - every ``ToolRequestStart`` gets its ``ToolRequestComplete``, unless the stream raised, ended
      without ``Done`` (cut off: the engine raises), or ``Done`` says the length limit cut it.
    """
    problems: List[str] = []
    kinds = [type(c).__name__ for c in chunks]
    if chunks:
        if kinds[0] != "Start":
            problems.append(f"the first chunk is {kinds[0]}, not Start")
        if kinds.count("Start") != 1:
            problems.append(f"{kinds.count('Start')} Start chunks")
    done = kinds.count("Done")
    if done > 1 or (done == 1 and kinds[-1] != "Done"):
        problems.append(f"Done is not once and last: {kinds}")
    if kinds.count("Usage") > 1:
        problems.append(f"{kinds.count('Usage')} Usage chunks")
    if done == 1 and "Usage" in kinds and kinds[-2] != "Usage":
        problems.append(f"Usage is not just before Done: {kinds}")
    open_calls: Dict[str, List[str]] = {}
    for chunk in chunks:
        if isinstance(chunk, LlmResponse.ToolRequestStart):
            if chunk.id in open_calls:
                problems.append(f"call {chunk.id} started twice")
            open_calls[chunk.id] = []
        elif isinstance(chunk, LlmResponse.ToolRequestArg):
            if chunk.id not in open_calls:
                problems.append(f"an argument piece of {chunk.id} outside its Start..Complete")
            else:
                open_calls[chunk.id].append(chunk.chunk)
        elif isinstance(chunk, LlmResponse.ToolRequestComplete):
            call = chunk.tool_call
            parts = open_calls.pop(call.id, None)
            if parts is None:
                problems.append(f"call {call.id} completed without a Start")
            elif "".join(parts) != call.arguments:
                problems.append(
                    f"call {call.id}: the pieces {''.join(parts)!r} are not the arguments {call.arguments!r}"
                )
    cut = done == 0 or error is not None or chunks[-1].stop_reason is StopReason.LENGTH
    if open_calls and not cut:
        problems.append(f"calls started and never completed: {sorted(open_calls)}")
    return problems
