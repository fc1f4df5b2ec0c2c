"""The shipped action formats: tool use's ACTION format, AgentTuning's ReAct OS and DB
formats, the web agent's format, and OpenAI function calling."""

from __future__ import annotations

from genteach.runtime.formats._text import TextFormat, truncate
from genteach.runtime.formats.function_calling import FunctionCallingFormat
from genteach.runtime.formats.react import ReactDbFormat, ReactOsFormat, answer_list
from genteach.runtime.formats.tool_use import ToolUseFormat, api_tool, tool_api
from genteach.runtime.formats.web import WebFormat

__all__ = [
    "FunctionCallingFormat",
    "ReactDbFormat",
    "ReactOsFormat",
    "TextFormat",
    "ToolUseFormat",
    "WebFormat",
    "answer_list",
    "api_tool",
    "tool_api",
    "truncate",
]
