from integrations.aws_partner_central.handlers import definition
from runtime.service import main

if __name__ == "__main__":
    main(definition)
