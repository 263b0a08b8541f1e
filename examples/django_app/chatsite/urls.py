"""Two endpoints: the answer as plain text, and as server-sent events."""

from django.urls import path

from . import views

urlpatterns = [
    path("chat", views.chat, name="chat"),
    path("chat/sse", views.chat_sse, name="chat-sse"),
]
