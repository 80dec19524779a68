from integrations.aws_partner_central.models import Base
from runtime.migrations import run_env

run_env([Base.metadata])
