from runtime.service import main
from services.pipeline.handlers import definition

if __name__ == "__main__":
    main(definition)
