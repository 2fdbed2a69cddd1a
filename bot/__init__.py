"""furusato-bot: the LINE chatbot platform for ふるさと住民登録制度."""
