"""YAML loading that remembers where each key came from, for errors that name file, line and key.

Why: an inventory or policy typo must be fixable from the error message alone
("inventory.yml:12: hosts[1].ssh.port: expected an integer"), not by bisecting.
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Optional

import yaml

#: Limits against hostile YAML: aliases may not expand to more nodes than this (billion laughs), nor nest
#: deeper, and a file may not be larger. Real inventories and policies are far below all three.
_Str = str  # Node defines a method named str: annotations after it use this alias
MAX_NODES = 200_000
MAX_DEPTH = 100
MAX_BYTES = 16 * 1024 * 1024


class ConfigError(ValueError):
    """A user-supplied file is invalid. ``str()`` is the full "file:line: key: message" text."""

    def __init__(self, path: str, line: Optional[int], key: str, message: str) -> None:
        self.path, self.line, self.key, self.message = path, line, key, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


class LDict(dict):
    """A mapping that knows the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LList(list):
    line: int = 0
    item_lines: list[int]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loading, through libyaml when PyYAML has it: the policy files load ~10x faster (scan start-up)."""


def _map(loader: _Loader, node: yaml.MappingNode) -> LDict:
    d = LDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        if isinstance(key, (list, dict)):
            raise ConfigError(loader.name, k_node.start_mark.line + 1, str(key), "mapping keys must be scalars")
        if key in d:
            raise ConfigError(loader.name, k_node.start_mark.line + 1, str(key), "duplicate key")
        d[key] = loader.construct_object(v_node, deep=True)
        d.key_lines[str(key)] = k_node.start_mark.line + 1
    return d


def _seq(loader: _Loader, node: yaml.SequenceNode) -> LList:
    lst = LList(loader.construct_object(n, deep=True) for n in node.value)
    lst.line = node.start_mark.line + 1
    lst.item_lines = [n.start_mark.line + 1 for n in node.value]
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)


def load(path: str, text: Optional[str] = None) -> Any:
    """Parse YAML with line tracking; syntax errors become ConfigError with the line."""
    if text is None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(path, None, "", f"cannot read: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(path, None, "", "not UTF-8 text") from None
    if len(text) > MAX_BYTES:
        raise ConfigError(path, None, "", f"larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to parse")
    loader = _Loader(text)
    loader.name = path
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(path, node)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(path, None, "", f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError(path, mark.line + 1 if mark else None, "", f"YAML syntax: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, None, "", f"YAML: {e}") from None
    finally:
        loader.dispose()


def _check_expansion(path: str, root: yaml.Node) -> None:
    """Refuse YAML whose aliases expand past MAX_NODES, that nests past MAX_DEPTH, or refers to itself.

    Why: PyYAML shares an aliased node, but every reader that copies the data (``_plain``, JSON output)
    expands it: nine nested aliases of nine items is a billion nodes and a MemoryError. The expanded size is
    counted in linear time, each distinct node once (memoised), before anything is constructed.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        line = node.start_mark.line + 1 if node.start_mark else None
        if key in active:
            raise ConfigError(path, line, "", "a YAML alias refers to its own anchor (recursive data)")
        if depth > MAX_DEPTH:
            raise ConfigError(path, line, "", f"nested more than {MAX_DEPTH} levels deep")
        n = 1
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            active.add(key)
            for child in node.value:
                for c in (child if isinstance(child, tuple) else (child,)):
                    n += size(c, depth + 1)
                    if n > MAX_NODES:
                        raise ConfigError(path, line, "", f"YAML aliases expand to more than {MAX_NODES} values "
                                                          "(an alias bomb?); write the data out instead")
            active.discard(key)
        sizes[key] = n
        return n

    size(root, 0)


class Node:
    """A cursor over loaded YAML that produces precise errors while reading typed values."""

    def __init__(self, path: str, value: Any, key: str = "", line: Optional[int] = None) -> None:
        self.path, self.value, self.key = path, value, key
        self.line = line if line is not None else getattr(value, "line", None)

    def error(self, message: str, key: Optional[str] = None, line: Optional[int] = None) -> ConfigError:
        return ConfigError(self.path, line or self.line, key if key is not None else self.key, message)

    def _join(self, k: str) -> str:
        return f"{self.key}.{k}" if self.key else k

    def mapping(self, allowed: Optional[set[str]] = None, required: tuple[str, ...] = ()) -> "Node":
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {type(self.value).__name__}")
        if allowed is not None:
            for k in self.value:
                if k not in allowed:
                    raise self.error(f"unknown key (allowed: {', '.join(sorted(allowed))})", self._join(str(k)),
                                     self.value.key_lines.get(str(k)) if isinstance(self.value, LDict) else None)
        for r in required:
            if r not in self.value:
                raise self.error("required key is missing", self._join(r))
        return self

    def get(self, k: str, default: Any = None) -> "Node":
        d = self.value if isinstance(self.value, dict) else {}
        line = d.key_lines.get(k) if isinstance(d, LDict) else None
        return Node(self.path, d.get(k, default), self._join(k), line or self.line)

    def has(self, k: str) -> bool:
        return isinstance(self.value, dict) and k in self.value

    def items(self) -> Iterator[tuple[str, "Node"]]:
        self.mapping()
        for k in self.value:
            yield str(k), self.get(str(k))

    def seq(self) -> list["Node"]:
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {type(self.value).__name__}")
        lines = getattr(self.value, "item_lines", [self.line] * len(self.value))
        return [Node(self.path, v, f"{self.key}[{i}]", lines[i]) for i, v in enumerate(self.value)]

    def str(self, default: Optional[str] = None, choices: Optional[tuple[str, ...]] = None) -> Optional[str]:
        v = self.value
        if v is None:
            return default
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise self.error(f"expected a string, got {type(v).__name__}")
        v = str(v)
        if choices and v not in choices:
            raise self.error(f"must be one of {', '.join(choices)} (got {v!r})")
        return v

    def req_str(self, choices: Optional[tuple[_Str, ...]] = None) -> _Str:
        if self.value is None or self.value == "":
            raise self.error("required value is missing")
        s = self.str(choices=choices)
        assert s is not None
        return s

    def int(self, default: Optional[int] = None, lo: Optional[int] = None, hi: Optional[int] = None) -> Optional[int]:
        v = self.value
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"expected an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(f"must be between {lo} and {hi} (got {v})")
        return v

    def num(self, default: Optional[float] = None, lo: float = 0.0, hi: Optional[float] = None) -> Optional[float]:
        """A finite number in [lo, hi] (seconds, mostly: ``.inf`` or ``.nan`` would disable a limit)."""
        v = self.value
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(f"expected a number, got {v!r}")
        if not math.isfinite(v):
            raise self.error(f"must be a finite number (got {v})")
        if v < lo or (hi is not None and v > hi):
            raise self.error(f"must be between {lo:g} and {hi:g} (got {v})" if hi is not None
                             else f"must be at least {lo:g} (got {v})")
        return float(v)

    def bool(self, default: bool = False) -> bool:
        v = self.value
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.error(f"expected true or false, got {v!r}")
        return v

    def str_list(self) -> list[_Str]:
        out = []
        for n in self.seq():
            s = n.str()
            if s is None:
                raise n.error("empty list entry")
            out.append(s)
        return out
