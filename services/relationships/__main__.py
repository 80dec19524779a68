from runtime.service import main
from services.relationships.handlers import definition

if __name__ == "__main__":
    main(definition)
