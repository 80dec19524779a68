"""The team's week: meetings, weekly updates and tasks (issue 11). COMMANDS is what the service answers."""

from __future__ import annotations

from contracts import week as w
from services.relationships.week import meeting_view, service, tasks, updates

COMMANDS = (
    (w.OpenWeek, service.open_week),
    (w.GetMeetingView, meeting_view.get_meeting_view),
    (w.ListMeetings, service.list_meetings),
    (w.CloseMeeting, service.close_meeting),
    (w.RecordDecision, service.record_decision),
    (w.GetUpdate, updates.get_update),
    (w.SaveUpdate, updates.save_update),
    (w.GetUpdateHistory, updates.history),
    (w.CreateTask, tasks.create_task),
    (w.ChangeTask, tasks.change_task),
    (w.ListTasks, tasks.list_tasks),
    (w.GetWeekSettings, service.get_settings),
    (w.ChangeWeekSettings, service.change_settings),
)
