#!/usr/bin/env python3
"""Checks the iOS shell (ios/) without a Swift compiler (none on this machine).

    check_shell.py IOS_DIR SWIFT_BINDINGS_DIR

IOS_DIR is the Swift package and app (ios/); SWIFT_BINDINGS_DIR holds the generated
opkey_ffi.swift, opkey_ffiFFI.h and opkey_ffiFFI.modulemap (bindings/generate).

- Syntax: every .swift file under IOS_DIR (except the git-ignored generated copy in
  Sources/OpKeyBindings) parses with tree-sitter-swift with zero ERROR and MISSING nodes,
  read as check.py reads the generated Swift.
- The shell against the generated API, by name and label (a real, if partial, type check):
  * every call of a generated function (also `OpKeyBindings.name(...)`), of a method on a
    value whose type is known to be a generated class (`core.keyGuide(keyId:bluetooth:)`)
    and of a generated record's initializer names something the bindings declare, with
    argument labels one of its signatures accepts;
  * a call of a lowerCamel free function that neither the bindings nor IOS_DIR declare
    (and Swift does not provide) is an error: it catches an export the bindings lack;
  * `value.member` on a value of a known generated or shell type names a field, case,
    method or extension member of that type (`guide.blocker`, `detail.guide.message`);
  * `case .name` in a switch, `if case`, `x == .name` and `.name` passed to a parameter of
    a known enum type name a case of that enum;
  * every shell type conforming to a generated protocol (SecretStore, Signer, BleTransport,
    listeners) implements each requirement with the same name, labels and parameter types.
  Types are known from annotations, parameters, initializers, the return types of known
  calls, `for ... in` over known streams and arrays, and case patterns of known enums;
  expressions of unknown type (Apple's frameworks) are not checked.
- The package: Package.swift's binary target is named like its .xcframework, which
  scripts/build-xcframework writes with the generated modulemap as Headers/module.modulemap
  (the module the generated Swift imports).
- Property lists (Info.plist, *.entitlements) load with plistlib and hold what the app
  needs: Bluetooth usage text and background mode, the opkey URL scheme, applinks
  associated domains. project.yml names files that exist. Scripts pass `bash -n` and are
  executable.

This proves the shell is well-formed and calls what the bindings offer, not that it
type-checks: that needs swiftc (a Mac; see ios/README.md).
"""

import os
import plistlib
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_swift
from tree_sitter import Language, Node, Parser

# check.py (beside this file) reads Swift the way the grammar can; no __pycache__ in the tree.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check import grammar_view  # noqa: E402

GENERATED_TARGET = Path("Sources") / "OpKeyBindings"
BINDINGS_MODULE = "OpKeyBindings"
# Free functions of Swift and its concurrency library the shell may call unqualified.
SWIFT_FUNCTIONS = {
    "abs", "assert", "assertionFailure", "fatalError", "max", "min", "precondition", "print",
    "repeatElement", "stride", "type", "withCheckedContinuation", "withCheckedThrowingContinuation",
    "withTaskCancellationHandler", "withTaskGroup", "withThrowingTaskGroup", "withUnsafeBytes", "zip",
}
# Keywords tree-sitter-swift 0.7 reads as a call when a block follows (`defer { ... }`).
BLOCK_KEYWORDS = {"defer", "do", "repeat"}
# Protocols that add no members a shell type's value could be asked for.
MARKER_PROTOCOLS = {"Sendable", "@uncheckedSendable", "Equatable", "Hashable", "Error", "Swift.Error"}
# Members every Swift value of a record, enum or error type has.
COMMON_MEMBERS = {"self", "hashValue", "hash", "localizedDescription", "errorDescription"}
CONTAINERS = ("AsyncStream", "AsyncThrowingStream", "Array", "Set")


@dataclass
class Signature:
    labels: list[str]  # "_" for an unlabelled parameter
    required: list[bool]
    types: list[str]
    returns: str | None


@dataclass
class TypeInfo:
    kind: str  # class, struct, enum, protocol, actor, extension
    fields: dict[str, str] = field(default_factory=dict)
    methods: dict[str, list[Signature]] = field(default_factory=dict)
    cases: dict[str, list[str]] = field(default_factory=dict)  # case -> associated types
    inits: list[Signature] = field(default_factory=list)
    inherits: set[str] = field(default_factory=set)

    def merge(self, other: "TypeInfo") -> None:
        self.fields.update(other.fields)
        for name, sigs in other.methods.items():
            self.methods.setdefault(name, []).extend(sigs)
        self.cases.update(other.cases)
        self.inits.extend(other.inits)
        self.inherits |= other.inherits
        if self.kind == "extension":
            self.kind = other.kind

    def members(self) -> set[str]:
        return set(self.fields) | set(self.methods) | set(self.cases)


@dataclass
class Model:
    types: dict[str, TypeInfo] = field(default_factory=dict)
    functions: dict[str, list[Signature]] = field(default_factory=dict)

    def add_type(self, name: str, info: TypeInfo) -> None:
        if name in self.types:
            self.types[name].merge(info)
        else:
            self.types[name] = info


def text(node: Node | None) -> str:
    return node.text.decode() if node is not None else ""


def normalize(type_text: str) -> str:
    """A type as written, without spaces, `Swift.`/module prefixes, `some`/`any`, `!`/`?`."""
    t = re.sub(r"\s+", "", type_text)
    t = re.sub(r"^(some|any)(?=[A-Z\[])", "", t)
    t = re.sub(rf"\b(Swift|Foundation|{BINDINGS_MODULE})\.", "", t)
    while t.endswith(("?", "!")):
        t = t[:-1]
    if t.startswith("Optional<") and t.endswith(">"):
        t = t[len("Optional<"):-1]
    return t


def element_type(type_text: str) -> str | None:
    """The element of `[T]`, `AsyncStream<T>`, `AsyncThrowingStream<T, E>`."""
    t = normalize(type_text)
    if t.startswith("[") and t.endswith("]") and ":" not in t:
        return t[1:-1]
    m = re.match(rf"^({'|'.join(CONTAINERS)})<(.+)>$", t)
    if m:
        return split_generic(m.group(2))[0]
    return None


def split_generic(args: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in args:
        if ch in "<[(":
            depth += 1
        elif ch in ">])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts]


# ---- declarations -------------------------------------------------------------------


def parameters(node: Node) -> tuple[Signature, list[str]]:
    """The signature of a function/init declaration and its parameters' local names."""
    labels, required, types, names = [], [], [], []
    children = node.children
    for i, child in enumerate(children):
        if child.type != "parameter":
            continue
        idents = [c for c in child.children if c.type == "simple_identifier"]
        wildcard = any(c.type == "_" or text(c) == "_" for c in child.children[:1])
        type_node = next((c for c in child.children if c.is_named and c.type != "simple_identifier"), None)
        if wildcard:
            label = "_"
        else:
            label = text(idents[0]) if idents else "_"
        labels.append(label)
        names.append(text(idents[-1]) if idents else "")
        types.append(normalize(text(type_node)))
        has_default = i + 1 < len(children) and children[i + 1].type == "="
        required.append(not has_default)
    returns = None
    for i, child in enumerate(children):
        if child.type == "->" and i + 1 < len(children):
            returns = normalize(text(children[i + 1]))
    return Signature(labels, required, types, returns), names


def describe(name: str, sig: Signature) -> str:
    params = ", ".join(f"{label}: {t}" for label, t in zip(sig.labels, sig.types))
    return f"{name}({params})" + (f" -> {sig.returns}" if sig.returns else "")


def function_name(node: Node) -> str:
    return text(next((c for c in node.children if c.type == "simple_identifier"), None))


def type_declaration(node: Node) -> tuple[str, TypeInfo] | None:
    kind_node = node.child_by_field_name("declaration_kind")
    name_node = node.child_by_field_name("name")
    if kind_node is None or name_node is None:
        return None
    kind = text(kind_node)
    name = normalize(text(name_node))
    info = TypeInfo(kind=kind)
    for child in node.children:
        if child.type == "inheritance_specifier":
            info.inherits.add(normalize(text(child)))
    body = node.child_by_field_name("body")
    for member in body.children if body is not None else []:
        if member.type == "property_declaration":
            pattern = member.child_by_field_name("name")
            annotation = next((c for c in member.children if c.type == "type_annotation"), None)
            type_node = annotation.child_by_field_name("name") if annotation is not None else None
            if pattern is not None:
                info.fields[text(pattern).strip("`")] = normalize(text(type_node)) if type_node else ""
        elif member.type in ("function_declaration", "protocol_function_declaration"):
            sig, _ = parameters(member)
            info.methods.setdefault(function_name(member), []).append(sig)
        elif member.type == "init_declaration":
            info.inits.append(parameters(member)[0])
        elif member.type == "enum_entry":
            names = [c for c in member.children if c.type == "simple_identifier"]
            data = next((c for c in member.children if c.type == "enum_type_parameters"), None)
            associated = []
            if data is not None:
                associated = [normalize(text(c)) for c in data.children
                              if c.is_named and c.type != "simple_identifier"]
            for case in names:
                info.cases[text(case).strip("`")] = associated if len(names) == 1 else []
        elif member.type in ("class_declaration", "protocol_declaration"):
            nested = type_declaration(member)
            if nested is not None:
                info.fields.setdefault(nested[0], "")
    if kind == "struct" and not info.inits and info.fields:
        # The memberwise initializer (internal), for shell structs.
        info.inits.append(Signature(list(info.fields), [True] * len(info.fields),
                                    list(info.fields.values()), name))
    return name, info


def declarations(root: Node, model: Model) -> None:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in ("class_declaration", "protocol_declaration"):
            declared = type_declaration(node)
            if declared is not None:
                model.add_type(*declared)
        elif node.type == "function_declaration" and node.parent is not None and \
                node.parent.type in ("source_file", "statements"):
            sig, _ = parameters(node)
            model.functions.setdefault(function_name(node), []).append(sig)
        stack.extend(node.children)


# ---- the shell against the model ----------------------------------------------------


class Checker:
    def __init__(self, generated: Model, shell: Model):
        self.generated = generated
        self.shell = shell
        self.problems: list[str] = []
        self.path = Path()
        self.checked_calls = 0
        self.checked_members = 0
        self.checked_cases = 0

    # Types ------------------------------------------------------------------------

    def info(self, type_name: str | None) -> TypeInfo | None:
        if not type_name:
            return None
        t = normalize(type_name).split(".")[-1]
        merged = None
        for model in (self.generated, self.shell):
            if t in model.types:
                if merged is None:
                    merged = TypeInfo(kind=model.types[t].kind)
                merged.merge(model.types[t])
        return merged

    def is_generated(self, type_name: str | None) -> bool:
        if not type_name:
            return False
        t = normalize(type_name).split(".")[-1]
        return t in self.generated.types and self.generated.types[t].kind != "extension"

    def known(self, type_name: str | None) -> bool:
        info = self.info(type_name)
        return info is not None and info.kind != "extension"

    def report(self, node: Node, message: str) -> None:
        row, column = node.start_point
        self.problems.append(f"{self.path}:{row + 1}:{column + 1}: {message}")

    # Expressions ------------------------------------------------------------------

    def type_of(self, node: Node | None, scope: "Scope") -> str | None:
        if node is None:
            return None
        kind = node.type
        if kind in ("try_expression", "await_expression", "parenthesized_expression"):
            inner = [c for c in node.children if c.is_named and c.type not in ("try_operator",)]
            return self.type_of(inner[-1] if inner else None, scope)
        if kind == "as_expression":
            cast = node.child_by_field_name("name")
            return normalize(text(cast)) if cast is not None else None
        if kind == "simple_identifier":
            name = text(node)
            found = scope.lookup(name)
            if found:
                return found
            if self.known(name):
                return f"type:{name}"
            return None
        if kind == "self_expression":
            return scope.lookup("self")
        if kind == "navigation_expression":
            target = node.child_by_field_name("target")
            suffix = node.child_by_field_name("suffix")
            member = text(suffix).lstrip(".").strip("`") if suffix is not None else ""
            owner = self.type_of(target, scope)
            return self.member_type(owner, member)
        if kind == "call_expression":
            callee = node.children[0]
            if callee.type == "simple_identifier":
                name = text(callee)
                if self.known(name):
                    return name
                sigs = self.generated.functions.get(name) or self.shell.functions.get(name)
                return sigs[0].returns if sigs else None
            if callee.type == "navigation_expression":
                owner = self.type_of(callee.child_by_field_name("target"), scope)
                suffix = callee.child_by_field_name("suffix")
                member = text(suffix).lstrip(".")
                if owner and owner.startswith("type:"):
                    return None
                info = self.info(owner)
                if info and member in info.methods:
                    return info.methods[member][0].returns
            return self.type_of(callee, scope) if callee.type in ("try_expression", "await_expression") else None
        return None

    def member_type(self, owner: str | None, member: str) -> str | None:
        if not owner:
            return None
        if owner.startswith("type:"):
            info = self.info(owner[5:])
            if info and member in info.cases:
                return owner[5:]
            return None
        info = self.info(owner)
        if info is None:
            return None
        if member in info.fields:
            return info.fields[member] or None
        return None

    # Checks -----------------------------------------------------------------------

    def check_member(self, node: Node, scope: "Scope") -> None:
        target = node.child_by_field_name("target")
        suffix = node.child_by_field_name("suffix")
        if suffix is None or target is None:
            return
        member = text(suffix).lstrip(".").strip("`")
        if target.type == "simple_identifier" and text(target) == BINDINGS_MODULE:
            return
        owner = self.type_of(target, scope)
        if not owner:
            return
        static = owner.startswith("type:")
        type_name = owner[5:] if static else owner
        info = self.info(type_name)
        if info is None or info.kind == "extension" and not self.known(type_name):
            return
        if element_type(type_name):
            return
        self.checked_members += 1
        if member in info.members() or member in COMMON_MEMBERS or (static and member == "init"):
            return
        if self.open_ended(type_name):
            return
        where = "the bindings" if self.is_generated(type_name) else "ios/"
        self.report(node, f"{type_name} has no member '{member}' (checked against {where})")

    def open_ended(self, type_name: str) -> bool:
        """A shell type whose members may come from a framework protocol or superclass
        (View, NSObject ...): members not declared in ios/ cannot be judged."""
        t = normalize(type_name).split(".")[-1]
        if self.is_generated(t) or t not in self.shell.types:
            return False
        inherits = {normalize(i) for i in self.shell.types[t].inherits}
        return any(i not in MARKER_PROTOCOLS and not self.is_generated(i) for i in inherits)

    def check_call(self, node: Node, scope: "Scope") -> None:
        callee = node.children[0]
        if self.is_subscript(node):
            return
        arguments = self.arguments(node)
        if callee.type == "simple_identifier":
            name = text(callee)
            if name in BLOCK_KEYWORDS or scope.lookup(name) is not None:
                return  # a closure held in a variable
            if name in self.generated.functions:
                self.match(node, name, self.generated.functions[name], arguments, scope)
            elif self.is_generated(name):
                info = self.generated.types[name]
                if info.kind in ("struct", "class") and info.inits:
                    self.match(node, f"{name}.init", info.inits, arguments, scope)
            elif name in self.shell.functions or self.known(name) or name in scope.methods():
                return
            elif name[:1].islower() and name not in SWIFT_FUNCTIONS:
                self.report(node, f"calls '{name}', which neither the bindings nor ios/ declare")
            return
        if callee.type != "navigation_expression":
            return
        target = callee.child_by_field_name("target")
        suffix = callee.child_by_field_name("suffix")
        member = text(suffix).lstrip(".") if suffix is not None else ""
        if target is not None and target.type == "simple_identifier" and text(target) == BINDINGS_MODULE:
            if member not in self.generated.functions:
                self.report(node, f"{BINDINGS_MODULE}.{member} is not a generated function")
            else:
                self.match(node, member, self.generated.functions[member], arguments, scope)
            return
        owner = self.type_of(target, scope)
        if owner and owner.startswith("type:"):
            # `Type.member(...)`: a case with values, a static method or an initializer.
            info = self.info(owner[5:])
            if info is not None and member not in info.members() | {"init"} | COMMON_MEMBERS \
                    and not self.open_ended(owner[5:]):
                self.report(node, f"{owner[5:]} has no case or method '{member}'")
            return
        info = self.info(owner)
        if info is None or not self.known(owner) or element_type(owner):
            return
        if member in info.methods:
            self.match(node, f"{normalize(owner)}.{member}", info.methods[member], arguments, scope)
        elif member not in info.fields and member not in COMMON_MEMBERS and not self.open_ended(owner):
            self.report(node, f"{normalize(owner)} has no method '{member}'")

    @staticmethod
    def is_subscript(call: Node) -> bool:
        suffix = next((c for c in call.children if c.type == "call_suffix"), None)
        args = next((c for c in suffix.children if c.type == "value_arguments"), None) if suffix else None
        return args is not None and args.child_count > 0 and args.children[0].type == "["

    def arguments(self, call: Node) -> list[tuple[str, Node | None]]:
        """(label or "_", value) per argument; a trailing closure counts as unlabelled."""
        out = []
        suffix = next((c for c in call.children if c.type == "call_suffix"), None)
        if suffix is None:
            return out
        for part in suffix.children:
            if part.type == "value_arguments":
                for arg in part.children:
                    if arg.type != "value_argument":
                        continue
                    label = next((c for c in arg.children if c.type == "value_argument_label"), None)
                    values = [c for c in arg.children if c.is_named and c.type != "value_argument_label"]
                    out.append((text(label) if label is not None else "_", values[-1] if values else None))
            elif part.type == "lambda_literal":
                out.append(("{closure}", part))
        return out

    def match(self, node: Node, what: str, sigs: list[Signature], arguments, scope) -> None:
        self.checked_calls += 1
        given = [label for label, _ in arguments]
        for sig in sigs:
            mapping = self.bind(sig, given)
            if mapping is not None:
                for (label, value), index in zip(arguments, mapping):
                    if index is not None:
                        self.check_implicit_member(value, sig.types[index], scope)
                return
        wanted = " | ".join("(" + ", ".join(f"{l}:" for l in s.labels) + ")" for s in sigs)
        self.report(node, f"{what} called with labels ({', '.join(given)}); the bindings take {wanted}")

    @staticmethod
    def bind(sig: Signature, given: list[str]) -> list[int | None] | None:
        """Which parameter each argument fills, or None when the labels do not fit."""
        mapping, position = [], 0
        for label in given:
            if label == "{closure}":
                # A trailing closure fills the next closure-typed parameter.
                while position < len(sig.labels) and "->" not in sig.types[position]:
                    if sig.required[position]:
                        return None
                    position += 1
                if position >= len(sig.labels):
                    return None
                mapping.append(position)
                position += 1
                continue
            while position < len(sig.labels) and sig.labels[position] != label:
                if sig.required[position]:
                    return None
                position += 1
            if position >= len(sig.labels):
                return None
            mapping.append(position)
            position += 1
        if any(sig.required[i] for i in range(position, len(sig.labels))):
            return None
        return mapping

    def check_implicit_member(self, value: Node | None, type_name: str, scope) -> None:
        """`.name` (or `.name(...)`) passed where an enum of a known type is expected."""
        if value is None:
            return
        if value.type == "call_expression" and value.children[0].type == "prefix_expression":
            value = value.children[0]
        if value.type != "prefix_expression" or not text(value).startswith("."):
            return
        info = self.info(type_name)
        if info is None or info.kind != "enum":
            return
        name = text(value)[1:].strip("`")
        self.checked_cases += 1
        if name not in info.cases and name not in info.members():
            self.report(value, f"{normalize(type_name)} has no case '{name}'")

    def case_names(self, pattern: Node) -> list[tuple[Node, str, list[Node]]]:
        """The `.case` of a case pattern, with the sub-patterns bound to its values."""
        node = pattern
        while node.type in ("switch_pattern",) and node.named_child_count:
            node = node.named_children[0]
        kids = node.children
        for i, kid in enumerate(kids):
            if kid.type == "." and i + 1 < len(kids) and kids[i + 1].type == "simple_identifier":
                bound = [k for k in kids[i + 2:] if k.type == "pattern"]
                return [(kids[i + 1], text(kids[i + 1]).strip("`"), bound)]
        return []

    def check_cases(self, subject_type: str | None, patterns: list[Node], scope: "Scope") -> None:
        info = self.info(subject_type)
        if info is None or info.kind != "enum":
            return
        for pattern in patterns:
            for name_node, name, bound in self.case_names(pattern):
                self.checked_cases += 1
                if name in ("none", "some") or name in info.cases:
                    values = info.cases.get(name, [])
                    if name == "some":
                        values = [normalize(subject_type)]
                    for sub, value_type in zip(bound, values):
                        binding = next((c for c in sub.children if c.type == "simple_identifier"), None)
                        if binding is not None and sub.named_child_count == 1:
                            scope.bind(text(binding), value_type)
                    if len(bound) > len(values) and name != "some":
                        self.report(name_node, f"{normalize(subject_type)}.{name} has {len(values)} "
                                               f"values, the pattern binds {len(bound)}")
                    for sub, value_type in zip(bound, values):
                        if self.case_names(sub):
                            self.check_cases(value_type, [sub], scope)
                else:
                    self.report(name_node, f"{normalize(subject_type)} has no case '{name}'")

    def check_exhaustive(self, switch: Node, subject_type: str | None) -> None:
        """A switch over a known enum without `default` names every case (as swiftc
        demands); it catches a case the bindings added that a screen does not handle."""
        info = self.info(subject_type)
        if info is None or info.kind != "enum" or not info.cases:
            return
        entries = [c for c in switch.children if c.type == "switch_entry"]
        if any(any(k.type == "default_keyword" for k in e.children) for e in entries):
            return
        named = set()
        for entry in entries:
            for pattern in (c for c in entry.children if c.type == "switch_pattern"):
                if any(c.type == "where_keyword" for c in pattern.children) or "where" in text(entry).split(":")[0]:
                    continue  # a guarded case covers nothing for sure
                named |= {name for _, name, _ in self.case_names(pattern)}
        if named & {"none", "some"}:
            return  # a switch over an optional: its cases are checked, not counted
        missing = sorted(set(info.cases) - named)
        if missing:
            self.report(switch, f"switch over {normalize(subject_type)} misses {', '.join(missing)} "
                                f"and has no default")

    def check_conformances(self) -> None:
        for name, info in self.shell.types.items():
            for protocol in info.inherits:
                required = self.generated.types.get(protocol)
                if required is None or required.kind != "protocol":
                    continue
                for method, sigs in required.methods.items():
                    for sig in sigs:
                        offered = info.methods.get(method, [])
                        if not any(o.labels == sig.labels and o.types == sig.types and o.returns == sig.returns
                                   for o in offered):
                            found = "; ".join(describe(method, o) for o in offered) or "nothing"
                            self.problems.append(f"{name} conforms to {protocol} but does not implement "
                                                 f"{describe(method, sig)}; found {found}")

    # Walk -------------------------------------------------------------------------

    def walk(self, node: Node, scope: "Scope") -> None:
        kind = node.type
        if kind in ("class_declaration", "protocol_declaration"):
            name_node = node.child_by_field_name("name")
            inner = Scope(scope)
            if name_node is not None:
                type_name = normalize(text(name_node))
                inner.bind("self", type_name)
                info = self.info(type_name)
                if info is not None:
                    for fname, ftype in info.fields.items():
                        if ftype:
                            inner.bind(fname, ftype)
                    inner.own_methods = set(info.methods)
            for child in node.children:
                self.walk(child, inner)
            return
        if kind in ("function_declaration", "init_declaration", "lambda_literal", "switch_entry",
                    "computed_property", "if_statement", "guard_statement", "for_statement"):
            inner = Scope(scope) if kind not in ("guard_statement",) else scope
            if kind in ("function_declaration", "init_declaration"):
                sig, names = parameters(node)
                for pname, ptype in zip(names, sig.types):
                    inner.bind(pname, ptype)
            elif kind == "lambda_literal":
                for param in self.descendants(node, "lambda_parameter", stop="statements"):
                    idents = [c for c in param.children if c.type == "simple_identifier"]
                    ptype = next((c for c in param.children if c.is_named and c.type != "simple_identifier"), None)
                    if idents and ptype is not None:
                        inner.bind(text(idents[-1]), normalize(text(ptype)))
            elif kind == "for_statement":
                pattern = node.child_by_field_name("item")
                collection = node.child_by_field_name("collection")
                element = element_type(self.type_of(collection, scope) or "")
                if pattern is not None and element and pattern.named_child_count == 1:
                    inner.bind(text(pattern), element)
            elif kind in ("if_statement", "guard_statement"):
                self.conditional_bindings(node, inner)
            for child in node.children:
                self.walk(child, inner)
            return
        if kind == "catch_block":
            inner = Scope(scope)
            pattern = next((c for c in node.children if c.type == "pattern"), None)
            cast = next((c for c in pattern.children if c.type == "user_type"), None) if pattern else None
            bound = next((c for c in pattern.children if c.type == "pattern"), None) if pattern else None
            name = next((c for c in bound.children if c.type == "simple_identifier"), None) if bound else None
            if cast is not None and name is not None:
                inner.bind(text(name), normalize(text(cast)))
            for child in node.children:
                self.walk(child, inner)
            return
        if kind == "property_declaration":
            self.declare(node, scope)
        elif kind == "switch_statement":
            subject = node.child_by_field_name("expr")
            subject_type = self.type_of(subject, scope)
            self.check_exhaustive(node, subject_type)
            for entry in (c for c in node.children if c.type == "switch_entry"):
                entry_scope = Scope(scope)
                self.check_cases(subject_type, [c for c in entry.children if c.type == "switch_pattern"],
                                 entry_scope)
                for child in entry.children:
                    self.walk(child, entry_scope)
            for child in node.children:
                if child.type != "switch_entry":
                    self.walk(child, scope)
            return
        elif kind == "equality_expression":
            lhs, rhs = node.child_by_field_name("lhs"), node.child_by_field_name("rhs")
            for a, b in ((lhs, rhs), (rhs, lhs)):
                if b is not None and b.type == "prefix_expression":
                    self.check_implicit_member(b, self.type_of(a, scope) or "", scope)
        elif kind == "call_expression":
            self.check_call(node, scope)
        elif kind == "navigation_expression":
            parent = node.parent
            is_callee = parent is not None and parent.type == "call_expression" and parent.children[0] == node
            if not is_callee:
                self.check_member(node, scope)
        for child in node.children:
            self.walk(child, scope)

    def declare(self, node: Node, scope: "Scope") -> None:
        pattern = node.child_by_field_name("name")
        if pattern is None or pattern.named_child_count != 1:
            return
        annotation = next((c for c in node.children if c.type == "type_annotation"), None)
        if annotation is not None:
            type_node = annotation.child_by_field_name("name")
            scope.bind(text(pattern), normalize(text(type_node)))
            return
        value = node.child_by_field_name("value")
        inferred = self.type_of(value, scope)
        if inferred and not inferred.startswith("type:"):
            scope.bind(text(pattern), inferred)

    def conditional_bindings(self, node: Node, scope: "Scope") -> None:
        """`if let x = e`, `guard let x = e`, `if case .c(let y) = e`."""
        kids = node.children
        i = 0
        while i < len(kids):
            kid = kids[i]
            if kid.type == "case":
                # if case [let] .name(patterns) = expression
                j = i + 1
                while j < len(kids) and kids[j].type != "=":
                    j += 1
                subject = next((k for k in kids[j + 1:] if k.is_named), None) if j < len(kids) else None
                fake = _CasePattern(kids[i + 1:j])
                subject_type = self.type_of(subject, scope)
                if fake.qualified:
                    subject_type = fake.qualified
                self.check_cases(subject_type, [fake], scope)
                i = j + 1
                continue
            if kid.type == "value_binding_pattern" and i + 2 < len(kids):
                name = kids[i + 1]
                j = i + 2
                if j < len(kids) and kids[j].type == "=":
                    j += 1
                value = kids[j] if j < len(kids) else None
                if name.type == "simple_identifier" and value is not None:
                    inferred = self.type_of(value, scope)
                    if inferred and not inferred.startswith("type:"):
                        scope.bind(text(name), normalize(inferred))
                i = j + 1
                continue
            i += 1

    @staticmethod
    def descendants(node: Node, kind: str, stop: str):
        stack = list(node.children)
        while stack:
            n = stack.pop()
            if n.type == stop:
                continue
            if n.type == kind:
                yield n
            stack.extend(n.children)


class _CasePattern:
    """The children of an `if case` pattern, shaped like a switch pattern for case_names."""

    def __init__(self, children: list[Node]):
        self.type = "pattern"
        self.qualified = None
        kids = []
        for child in children:
            if child.type == "user_type":
                self.qualified = normalize(text(child))
                continue
            kids.append(child)
        self.children = kids
        self.named_child_count = 0
        self.named_children = []


class Scope:
    def __init__(self, parent: "Scope | None" = None):
        self.parent = parent
        self.names: dict[str, str] = {}
        self.own_methods: set[str] = set()

    def bind(self, name: str, type_name: str) -> None:
        if name and type_name:
            self.names[name.strip("`")] = type_name

    def lookup(self, name: str) -> str | None:
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def methods(self) -> set[str]:
        out, scope = set(), self
        while scope is not None:
            out |= scope.own_methods
            scope = scope.parent
        return out


# ---- files --------------------------------------------------------------------------


def check_plists(ios: Path) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    plists = sorted(list(ios.rglob("*.plist")) + list(ios.rglob("*.entitlements")))
    if not plists:
        problems.append(f"no Info.plist or entitlements under {ios}")
    for path in plists:
        try:
            with path.open("rb") as f:
                data = plistlib.load(f)
        except Exception as e:  # noqa: BLE001 - any parse failure is the finding
            problems.append(f"{path}: not a valid property list ({e})")
            continue
        notes.append(f"{path.relative_to(ios)}: {len(data)} keys")
        if path.name == "Info.plist":
            if not str(data.get("NSBluetoothAlwaysUsageDescription", "")).strip():
                problems.append(f"{path}: NSBluetoothAlwaysUsageDescription is missing")
            if "bluetooth-central" not in data.get("UIBackgroundModes", []):
                problems.append(f"{path}: UIBackgroundModes lacks bluetooth-central")
            schemes = [s for t in data.get("CFBundleURLTypes", []) for s in t.get("CFBundleURLSchemes", [])]
            if "opkey" not in schemes:
                problems.append(f"{path}: CFBundleURLTypes does not register the opkey scheme")
            if not data.get("OpKeyInviteHosts"):
                problems.append(f"{path}: OpKeyInviteHosts (the invite link hosts) is empty")
        if path.suffix == ".entitlements":
            domains = data.get("com.apple.developer.associated-domains", [])
            if not domains or not all(d.startswith("applinks:") for d in domains):
                problems.append(f"{path}: associated domains must be applinks: entries, found {domains}")
    return problems, notes


def check_scripts(ios: Path) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    for path in sorted((ios / "scripts").glob("*")):
        if not path.is_file():
            continue
        if not os.access(path, os.X_OK):
            problems.append(f"{path}: not executable")
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"{path}: bash -n failed: {result.stderr.strip()}")
        notes.append(f"{path.relative_to(ios)}: bash -n ok")
    return problems, notes


def check_package(ios: Path, bindings: Path) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    package = (ios / "Package.swift").read_text()
    binary = re.search(r'\.binaryTarget\(\s*name:\s*"([^"]+)"\s*,\s*path:\s*"([^"]+)"', package)
    modulemap = next(iter(sorted(bindings.glob("*.modulemap"))), None)
    module = re.search(r"\bmodule\s+(\w+)\s*\{", modulemap.read_text()) if modulemap else None
    generated = "\n".join(p.read_text() for p in sorted(bindings.glob("*.swift")))
    if not binary:
        problems.append("Package.swift has no .binaryTarget(name:path:)")
    elif not module:
        problems.append(f"no module declaration in {bindings}/*.modulemap")
    else:
        name, path = binary.groups()
        if Path(path).name != f"{name}.xcframework":
            problems.append(f"Package.swift's binary target {name} is at {path}: SwiftPM wants {name}.xcframework")
        if f"canImport({module.group(1)})" not in generated:
            problems.append(f"the generated Swift does not import {module.group(1)}, its modulemap's module")
        script = (ios / "scripts" / "build-xcframework").read_text()
        if f"-output ios/{path}" not in script:
            problems.append(f"scripts/build-xcframework does not write ios/{path}")
        if not re.search(r"modulemap\"?\s+\"?\$work/Headers/module\.modulemap", script):
            problems.append("scripts/build-xcframework does not install the modulemap as Headers/module.modulemap")
        if f'"{module.group(1)}"' not in script:
            problems.append(f"scripts/build-xcframework does not check for module {module.group(1)}")
        notes.append(f"Package.swift: binary target {name} at {path}, module {module.group(1)} in its Headers")
    if f'name: "{BINDINGS_MODULE}"' not in package:
        problems.append(f"Package.swift has no {BINDINGS_MODULE} target")
    project = ios / "project.yml"
    if project.exists():
        for key in ("INFOPLIST_FILE", "CODE_SIGN_ENTITLEMENTS"):
            m = re.search(rf"^\s*{key}:\s*(\S+)\s*$", project.read_text(), re.MULTILINE)
            if not m or not (ios / m.group(1)).is_file():
                problems.append(f"project.yml: {key} does not name a file in {ios}")
        notes.append("project.yml: Info.plist and entitlements exist")
    else:
        problems.append(f"no project.yml in {ios}")
    return problems, notes


def parse_problems(label: str, tree) -> list[str]:
    """ERROR and MISSING nodes, as check.py reports them."""
    problems, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            kind = "MISSING " + node.type if node.is_missing else "ERROR"
            row, column = node.start_point
            problems.append(f"{label}:{row + 1}:{column + 1}: {kind}")
        if node.has_error:
            stack.extend(node.children)
    return sorted(problems)


def analyse(sources: dict[Path, str], generated: Model, parser: Parser) -> tuple[list[str], Checker]:
    """Syntax and API problems of the shell's Swift sources (path -> text)."""
    failures: list[str] = []
    shell = Model()
    trees = {}
    for path, source in sources.items():
        tree = parser.parse(grammar_view(source)[0].encode())
        failures += parse_problems(str(path), tree)
        trees[path] = tree
        declarations(tree.root_node, shell)
    checker = Checker(generated, shell)
    for path, tree in trees.items():
        checker.path = path
        checker.walk(tree.root_node, Scope())
    checker.check_conformances()
    return failures + checker.problems, checker


# Each mutation breaks the shell in one way the checks must catch: (what, pattern,
# replacement, text the finding must contain). Applied to the first match only.
MUTATIONS = [
    ("a core method renamed", r"\bcore\.(keyGuide|homeGuide|keys|pin)\(", r"core.\1Gone(", "Gone"),
    ("a generated function renamed", r"\bunlockErrorGuide\(", "unlockErrorGuides(", "unlockErrorGuides"),
    ("a wrong argument label", r"\bkeyGuide\(keyId:", "keyGuide(key:", "labels"),
    ("a record field misspelt", r"\.guide\.message\b", ".guide.messages", "messages"),
    ("an enum case misspelt", r"case \.bluetoothOff\b", "case .bluetoothOfff", "bluetoothOfff"),
    ("a case left out of a switch", r"case \.welcome, \.phoneRevoked:", "case .welcome:", "misses phoneRevoked"),
    ("a protocol requirement's type changed", r"func sign\(message: Data\)", "func sign(message: [UInt8])",
     "Signer"),
    ("a syntax error", r"\bguard let ", "guard let let ", "ERROR"),
]


def self_test(sources: dict[Path, str], generated: Model, parser: Parser, baseline: int) -> list[str]:
    """Proves the checks can fail: each mutation of the real sources must be reported."""
    failures = []
    for what, pattern, replacement, expected in MUTATIONS:
        target = next((p for p, src in sources.items() if re.search(pattern, src)), None)
        if target is None:
            failures.append(f"self-test: nothing in the sources to mutate for {what} ({pattern})")
            continue
        mutated = dict(sources)
        mutated[target] = re.sub(pattern, replacement, sources[target], count=1)
        problems, _ = analyse(mutated, generated, parser)
        caught = len(problems) > baseline and any(expected in p for p in problems)
        print(f"self-test: {what} in {target.name}: {'caught' if caught else 'MISSED'}")
        if not caught:
            failures.append(f"self-test: {what} ({target}) was not reported")
    return failures


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ios, bindings = Path(sys.argv[1]), Path(sys.argv[2])
    parser = Parser(Language(tree_sitter_swift.language()))
    failures: list[str] = []

    generated_files = sorted(bindings.glob("*.swift"))
    if not generated_files:
        print(f"no generated Swift in {bindings}: run bindings/generate")
        return 1
    generated = Model()
    for path in generated_files:
        declarations(parser.parse(grammar_view(path.read_text())[0].encode()).root_node, generated)

    paths = sorted(p for p in ios.rglob("*.swift")
                   if not p.relative_to(ios).is_relative_to(GENERATED_TARGET) and ".build" not in p.parts)
    if not paths:
        print(f"no Swift sources under {ios}")
        return 1
    sources = {p: p.read_text() for p in paths}
    problems, checker = analyse(sources, generated, parser)
    failures += problems
    for path, source in sources.items():
        errors = sum(1 for p in problems if p.startswith(f"{path}:") and p.endswith(("ERROR", "MISSING")))
        print(f"{path.relative_to(ios)}: {source.count(chr(10))} lines, {errors} ERROR/MISSING nodes")
    print(f"against {', '.join(p.name for p in generated_files)}: {checker.checked_calls} calls, "
          f"{checker.checked_members} member accesses, {checker.checked_cases} enum cases checked; "
          f"{len(checker.problems)} problems")
    if problems:
        print("self-test skipped: the sources already have problems")
    else:
        failures += self_test(sources, generated, parser, 0)

    for check in (check_plists(ios), check_scripts(ios), check_package(ios, bindings)):
        found, notes = check
        failures += found
        for note in notes:
            print(note)

    if failures:
        print(f"iOS shell check FAILED ({len(failures)} problems):")
        print("\n".join(failures[:80]))
        return 1
    print(f"iOS shell check passed: {len(sources)} Swift files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
