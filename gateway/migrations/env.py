# Every module that declares gateway tables, so they are all on the one Base's metadata.
import gateway.calendar_feed
import gateway.models
import gateway.read_models.commissions
import gateway.read_models.funding
import gateway.read_models.kpi_snapshots
import gateway.read_models.partners
import gateway.read_models.pipeline
import gateway.read_models.week  # noqa: F401
from gateway.read_models.base import Base
from runtime.migrations import run_env

run_env([Base.metadata])
