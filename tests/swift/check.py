#!/usr/bin/env python3
"""Checks the generated Swift bindings without a Swift compiler (none on this machine).

    check.py SWIFT_DIR [LIBRARY]

- Every .swift file parses with tree-sitter-swift with zero ERROR and MISSING nodes,
  after `#if swift(>=5.8)` ... [`#else` ...] `#endif` blocks are resolved as a Swift >= 5.8
  compiler would (the grammar trips on those blocks around attributes).
- tree-sitter-swift 0.7 cannot parse the empty-tuple expression `()` (valid Swift, same
  as `Void()`); UniFFI writes it as a closure body, `{ () }`, which is read as
  `{ Void() }`. Nothing else is rewritten.
- The C header declares every FFI function the Swift code calls, and, given LIBRARY
  (the cdylib), every declared function is exported by that library.
- The modulemap names the header, and its module is the one the Swift code imports.

This proves the files are well-formed and consistent with each other and with the library,
not that they type-check: that needs swiftc (macOS CI or a developer's Mac).
"""

import re
import subprocess
import sys
from pathlib import Path

import tree_sitter_swift
from tree_sitter import Language, Parser

SWIFT_58 = re.compile(r"^\s*#if\s+swift\(\s*>=\s*5\.8\s*\)\s*$")
UNIT_CLOSURE = re.compile(r"\{\s*\(\)\s*\}")
FFI_SYMBOL = re.compile(r"\b((?:uniffi|ffi)_opkey_ffi_\w+)\b")
FFI_DECLARATION = re.compile(r"\b((?:uniffi|ffi)_opkey_ffi_\w+)\s*\(")


def resolve_swift_58(source: str) -> str:
    """Keeps the `#if swift(>=5.8)` branch and drops its `#else` branch; other
    conditional blocks are left alone. Dropped lines become blank to keep line numbers."""
    out = []
    # One entry per open #if: None for other conditions, else whether lines are kept.
    stack: list[bool | None] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#if"):
            if SWIFT_58.match(line):
                stack.append(True)
                out.append("")
                continue
            stack.append(None)
        elif stripped.startswith(("#elseif", "#else")) and stack and stack[-1] is not None:
            stack[-1] = False
            out.append("")
            continue
        elif stripped.startswith("#endif"):
            if not stack:
                raise ValueError("#endif without #if")
            if stack.pop() is not None:
                out.append("")
                continue
        kept = all(state is not False for state in stack)
        out.append(line if kept else "")
    if stack:
        raise ValueError("#if without #endif")
    return "\n".join(out) + "\n"


def grammar_view(source: str) -> tuple[str, int]:
    """The source as tree-sitter-swift can read it, and how many `{ () }` were rewritten."""
    return UNIT_CLOSURE.subn("{ Void() }", resolve_swift_58(source))


def syntax_problems(path: Path, parser: Parser) -> tuple[list[str], int]:
    source, rewritten = grammar_view(path.read_text())
    tree = parser.parse(source.encode())
    problems = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            kind = "MISSING " + node.type if node.is_missing else "ERROR"
            row, column = node.start_point
            problems.append(f"{path}:{row + 1}:{column + 1}: {kind}")
        if node.has_error:
            stack.extend(node.children)
    return sorted(problems), rewritten


def exported_symbols(library: Path) -> set[str]:
    nm = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], check=True, capture_output=True, text=True
    )
    return {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(sys.argv[1])
    library = Path(sys.argv[2]) if len(sys.argv) == 3 else None
    failures = []

    swift_files = sorted(folder.glob("*.swift"))
    headers = sorted(folder.glob("*.h"))
    modulemaps = sorted(folder.glob("*.modulemap"))
    for kind, found in (("Swift source", swift_files), ("header", headers), ("modulemap", modulemaps)):
        if not found:
            failures.append(f"no {kind} in {folder}")
    if failures:
        print("\n".join(failures))
        return 1

    parser = Parser(Language(tree_sitter_swift.language()))
    swift_symbols: set[str] = set()
    imports: set[str] = set()
    for path in swift_files:
        problems, rewritten = syntax_problems(path, parser)
        failures += problems
        text = path.read_text()
        swift_symbols |= set(FFI_SYMBOL.findall(text))
        imports |= set(re.findall(r"^\s*import\s+(\w+)", text, re.MULTILINE))
        lines = text.count("\n")
        print(f"{path.name}: {lines} lines, {len(problems)} ERROR/MISSING nodes "
              f"({rewritten} `{{ () }}` read as `{{ Void() }}`)")

    declared: set[str] = set()
    for header in headers:
        declared |= set(FFI_DECLARATION.findall(header.read_text()))
    undeclared = sorted(swift_symbols - declared)
    failures += [f"the Swift code calls {name}, which no header declares" for name in undeclared]
    print(f"{', '.join(h.name for h in headers)}: {len(declared)} FFI functions declared; "
          f"the Swift code uses {len(swift_symbols)}, all declared: {not undeclared}")

    if library is not None:
        missing = sorted(declared - exported_symbols(library))
        failures += [f"{name} is declared but {library} does not export it" for name in missing]
        print(f"{library.name}: exports every declared function: {not missing}")

    header_names = {h.name for h in headers}
    for modulemap in modulemaps:
        text = modulemap.read_text()
        module = re.search(r"\bmodule\s+(\w+)\s*\{", text)
        named = re.findall(r'\bheader\s+"([^"]+)"', text)
        if not module:
            failures.append(f"{modulemap}: no module declaration")
        elif module.group(1) not in imports:
            failures.append(f"{modulemap}: module {module.group(1)} is not imported by the Swift code")
        if not named or any(name not in header_names for name in named):
            failures.append(f"{modulemap}: names header(s) {named}, generated: {sorted(header_names)}")
        print(f"{modulemap.name}: module {module.group(1) if module else '?'}, header {', '.join(named)}")

    if failures:
        print(f"Swift check FAILED ({len(failures)} problems):")
        print("\n".join(failures[:50]))
        return 1
    print(f"Swift check passed: {len(swift_files)} Swift file(s), {len(headers)} header(s), "
          f"{len(modulemaps)} modulemap(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
