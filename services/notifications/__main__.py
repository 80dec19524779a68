from runtime.service import main
from services.notifications.handlers import definition

if __name__ == "__main__":
    main(definition)
