from runtime.service import main
from services.commissions.handlers import definition

if __name__ == "__main__":
    main(definition)
