from runtime.migrations import run_env
from services.relationships import pipeline_copy
from services.relationships.activity import models as activity
from services.relationships.competencies import models as competencies
from services.relationships.contacts import models as contacts
from services.relationships.deadlines import models as deadlines
from services.relationships.enablement import models as enablement
from services.relationships.funding import models as funding
from services.relationships.goals import models as goals
from services.relationships.onboarding import models as onboarding
from services.relationships.reviews import models as reviews
from services.relationships.week import models as week

# Each part of the service keeps its models on a Base of its own; the schema is all of them.
run_env([m.Base.metadata for m in (pipeline_copy, activity, competencies, contacts, deadlines, enablement, funding,
                                   goals, onboarding, reviews, week)])
