"""The business reviews area's command responders."""

from contracts import reviews as rc
from services.relationships.reviews import service

COMMANDS = (
    (rc.CreateReview, service.create_review),
    (rc.GetReview, service.get_review),
    (rc.ListReviews, service.list_reviews),
    (rc.UpdateReview, service.update_review),
    (rc.AddReviewDecision, service.add_decision),
    (rc.AddFollowUp, service.add_follow_up),
)
