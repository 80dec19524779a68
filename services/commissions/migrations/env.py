from runtime.migrations import run_env
from services.commissions.models import Base

run_env([Base.metadata])
