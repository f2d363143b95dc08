"""Reading a repository's Merkle Search Tree (spec `repository`).

A node is ``{l: CID|null, e: [{p, k, v, t}]}``: entries in key order, each
key stored as the length of the prefix shared with the previous key plus the
rest, ``v`` the record's CID and ``t`` the subtree of keys between this entry
and the next; ``l`` holds the keys before the first entry. Blocks come from
a CAR (:class:`coves.atproto.car.Car`), which is verified block by block as
it is read, so a path proven here is proven up to the signed commit's
``data`` root.
"""

from __future__ import annotations

from collections.abc import Iterator

from coves.atproto.car import Car, CarError, cid_bytes


class MissingBlock(CarError):
    """The CAR lacks a node the walk needs: the proof is incomplete."""


def _node(car: Car, cid: bytes) -> tuple[bytes | None, list[tuple[bytes, bytes, bytes | None]]]:
    """(left subtree, [(key, value, right subtree)]) of the node ``cid``."""
    value = car.decode(cid)
    if value is None:
        raise MissingBlock("MST node missing from the CAR")
    if not isinstance(value, dict) or not isinstance(value.get("e"), list):
        raise CarError("not an MST node")
    left = value.get("l")
    entries: list[tuple[bytes, bytes, bytes | None]] = []
    previous = b""
    for entry in value["e"]:
        if not isinstance(entry, dict):
            raise CarError("malformed MST entry")
        prefix, suffix = entry.get("p"), entry.get("k")
        if not isinstance(prefix, int) or not isinstance(suffix, bytes) or prefix > len(previous):
            raise CarError("malformed MST entry key")
        key = previous[:prefix] + suffix
        if entries and key <= previous:
            raise CarError("MST keys out of order")
        tree = entry.get("t")
        entries.append((key, cid_bytes(entry.get("v")), None if tree is None else cid_bytes(tree)))
        previous = key
    return (None if left is None else cid_bytes(left)), entries


def lookup(car: Car, root: bytes, key: str) -> bytes | None:
    """The record CID stored under ``key`` ("collection/rkey"), or None if absent.

    Raises :class:`MissingBlock` when the CAR lacks a node on the key's path,
    so absence is only reported when it is proven.
    """
    return _descend(car, root, key.encode(), [])


def path(car: Car, root: bytes, key: str) -> list[bytes]:
    """The nodes from the root down to where ``key`` is (or would be): its proof."""
    visited: list[bytes] = []
    _descend(car, root, key.encode(), visited)
    return visited


def _descend(car: Car, root: bytes, target: bytes, visited: list[bytes]) -> bytes | None:
    node: bytes | None = root
    while node is not None:
        visited.append(node)
        left, entries = _node(car, node)
        below = left
        for entry_key, value, tree in entries:
            if entry_key == target:
                return value
            if entry_key > target:
                break
            below = tree
        node = below
    return None


def walk(car: Car, root: bytes) -> Iterator[tuple[str, bytes]]:
    """Every (key, record CID) of the tree, in key order (needs every node)."""
    stack: list[tuple[str, bytes] | bytes] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            yield item
            continue
        left, entries = _node(car, item)
        pending: list[tuple[str, bytes] | bytes] = []
        if left is not None:
            pending.append(left)
        for key, value, tree in entries:
            pending.append((key.decode("utf-8", errors="replace"), value))
            if tree is not None:
                pending.append(tree)
        stack.extend(reversed(pending))
