@echo off
rem Double-click launcher (Windows): private virtual environment on first run, then the app.
setlocal
set HERE=%~dp0..
set VENV=%HERE%\.venv
if not exist "%VENV%\Scripts\python.exe" (
  echo First start: installing Image Alchemy into %VENV% ^(this downloads PyTorch; a few minutes^)...
  py -3 -m venv "%VENV%" || python -m venv "%VENV%" || goto :fail
  "%VENV%\Scripts\python.exe" -m pip install --upgrade pip || goto :fail
  "%VENV%\Scripts\python.exe" -m pip install -e "%HERE%" || goto :fail
)
start "" "%VENV%\Scripts\pythonw.exe" "%HERE%\main.py" %*
exit /b 0
:fail
echo Installation failed; see the messages above.
pause
exit /b 1
