from sqlalchemy.orm import DeclarativeBase

from runtime.db import make_metadata

SCHEMA = "gateway"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)
