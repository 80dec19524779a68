from runtime.migrations import run_env
from services.pipeline.models import Base

run_env([Base.metadata])
