"""Who is calling, and what they may see."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str
    is_admin: bool = False

    def may_see(self, owner_id: str) -> bool:
        return self.is_admin or owner_id == self.user_id
