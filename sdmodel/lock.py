"""CMD42 LOCK_UNLOCK: password management of the card (Physical Layer spec §4.3.7).

The data block is ``flags, PWDS_LEN, password bytes`` where flags bit 3 = ERASE
(forced erase), bit 2 = LOCK_UNLOCK, bit 1 = CLR_PWD, bit 0 = SET_PWD. When replacing
a password the block carries the old and the new one concatenated (PWDS_LEN = both).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["LockAction", "LockRequest", "LockState", "parse_lock_block", "MAX_PASSWORD"]

MAX_PASSWORD = 16  # bytes, §4.3.7.1


class LockAction(str, Enum):
    SET_PASSWORD = "set"
    CLEAR_PASSWORD = "clear"
    LOCK = "lock"
    UNLOCK = "unlock"
    FORCE_ERASE = "force_erase"
    INVALID = "invalid"


@dataclass(frozen=True)
class LockRequest:
    action: LockAction
    password: bytes = b""  # PWD field: old (+ new for SET_PASSWORD)
    lock_after_set: bool = False  # SET_PWD together with LOCK_UNLOCK


def parse_lock_block(block: bytes) -> LockRequest:
    """Decode a CMD42 data block; malformed blocks give ``LockAction.INVALID``."""
    if len(block) < 1:
        return LockRequest(LockAction.INVALID)
    flags = block[0]
    erase, lock, clr, set_ = (flags >> 3) & 1, (flags >> 2) & 1, (flags >> 1) & 1, flags & 1
    if erase:
        # Forced erase must be the only bit set (§4.3.7.4).
        return LockRequest(LockAction.FORCE_ERASE if flags & 0x0F == 0x08 else LockAction.INVALID)
    if len(block) < 2:
        return LockRequest(LockAction.INVALID)
    pwds_len = block[1]
    if pwds_len > 2 * MAX_PASSWORD or 2 + pwds_len > len(block):
        return LockRequest(LockAction.INVALID)
    pwd = bytes(block[2 : 2 + pwds_len])
    if set_ and clr:
        return LockRequest(LockAction.INVALID)
    if set_:
        return LockRequest(LockAction.SET_PASSWORD, pwd, lock_after_set=bool(lock))
    if clr:
        return LockRequest(LockAction.CLEAR_PASSWORD, pwd)
    return LockRequest(LockAction.LOCK if lock else LockAction.UNLOCK, pwd)


@dataclass
class LockState:
    password: bytes = b""
    locked: bool = False

    def apply(self, req: LockRequest) -> bool:
        """Carry out a request; False means LOCK_UNLOCK_FAILED (§4.3.7).
        FORCE_ERASE only validates here; the card erases the data itself."""
        match req.action:
            case LockAction.SET_PASSWORD:
                old = self.password
                if not req.password.startswith(old):
                    return False
                new = req.password[len(old) :]
                if not 1 <= len(new) <= MAX_PASSWORD:
                    return False
                self.password = new
                if req.lock_after_set:
                    self.locked = True
                return True
            case LockAction.CLEAR_PASSWORD:
                if not self.password or req.password != self.password:
                    return False
                self.password = b""
                self.locked = False  # a card without a password cannot stay locked
                return True
            case LockAction.LOCK:
                if not self.password or req.password != self.password:
                    return False
                self.locked = True
                return True
            case LockAction.UNLOCK:
                if not self.locked or req.password != self.password:
                    return False
                self.locked = False
                return True
            case LockAction.FORCE_ERASE:
                if not self.locked:
                    return False
                self.password = b""
                self.locked = False
                return True
        return False
