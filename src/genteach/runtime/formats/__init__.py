"""The shipped action formats: tool use's ACTION format, AgentTuning's ReAct OS and DB
formats, and OpenAI function calling."""

from __future__ import annotations

from genteach.runtime.formats._text import TextFormat, truncate
from genteach.runtime.formats.function_calling import FunctionCallingFormat
from genteach.runtime.formats.react import ReactDbFormat, ReactOsFormat, answer_list
from genteach.runtime.formats.tool_use import ToolUseFormat, api_tool, tool_api

__all__ = [
    "FunctionCallingFormat",
    "ReactDbFormat",
    "ReactOsFormat",
    "TextFormat",
    "ToolUseFormat",
    "answer_list",
    "api_tool",
    "tool_api",
    "truncate",
]
