"""Cross-signing keys (master, self-signing, user-signing) and uploaded key signatures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database


@dataclass(frozen=True)
class SignatureRow:
    target_user_id: str
    target_key_id: str
    signer_user_id: str
    signer_key_id: str
    signature: str


def _in(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


class CrossSigningRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def keys_of(self, user_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """``{user_id: {usage: key object}}``."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        if not user_ids:
            return out
        ids = list(user_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                f"SELECT user_id, key_usage, key_json FROM cross_signing_keys WHERE user_id IN ({_in(chunk)})", chunk
            )
            for r in rows:
                out.setdefault(str(r["user_id"]), {})[str(r["key_usage"])] = json.loads(r["key_json"])
        return out

    async def store_key(self, user_id: str, usage: str, public_key: str, key: dict[str, Any], now_ms: int) -> None:
        await self.db.execute(
            self.db.upsert_sql(
                "cross_signing_keys", ["user_id", "key_usage"],
                ["user_id", "key_usage", "public_key", "key_json", "updated_ts"],
            ),
            (user_id, usage, public_key, json.dumps(key, ensure_ascii=False), now_ms),
        )

    async def add_signature(self, row: SignatureRow, now_ms: int) -> None:
        await self.db.execute(
            self.db.upsert_sql(
                "key_signatures", ["target_user_id", "target_key_id", "signer_user_id", "signer_key_id"],
                ["target_user_id", "target_key_id", "signer_user_id", "signer_key_id", "signature", "created_ts"],
            ),
            (row.target_user_id, row.target_key_id, row.signer_user_id, row.signer_key_id, row.signature, now_ms),
        )

    async def signatures_for(self, target_user_ids: Sequence[str]) -> list[SignatureRow]:
        if not target_user_ids:
            return []
        ids = list(target_user_ids)
        out: list[SignatureRow] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                "SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature "
                f"FROM key_signatures WHERE target_user_id IN ({_in(chunk)})", chunk,
            )
            out += [SignatureRow(str(r["target_user_id"]), str(r["target_key_id"]), str(r["signer_user_id"]),
                                 str(r["signer_key_id"]), str(r["signature"])) for r in rows]
        return out

    async def delete_signatures_by(self, signer_user_id: str, signer_key_id: str) -> None:
        await self.db.execute(
            "DELETE FROM key_signatures WHERE signer_user_id = ? AND signer_key_id = ?",
            (signer_user_id, signer_key_id),
        )
