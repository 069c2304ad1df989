@echo off
rem Windows: double-click to start Image Alchemy from its source folder. The first start makes a
rem private virtual environment (<source>\.venv), installs the app into it (a few minutes; the log
rem is %LOCALAPPDATA%\ImageAlchemy\logs\install.log) and then opens it; later starts are quick.
rem   launch.bat [--dry-run] [ARGS...]   --dry-run says what would happen and changes nothing.
setlocal EnableDelayedExpansion
for %%I in ("%~dp0..\..") do set "ROOT=%%~fI"
if defined IMAGE_ALCHEMY_VENV (set "VENV=%IMAGE_ALCHEMY_VENV%") else (set "VENV=%ROOT%\.venv")
if defined IMAGE_ALCHEMY_HOME (set "DATA=%IMAGE_ALCHEMY_HOME%") else (set "DATA=%LOCALAPPDATA%\ImageAlchemy")
set "LOG=%DATA%\logs\install.log"
set "MARKER=%VENV%\.image-alchemy-installed"
for /f "delims=" %%H in ('certutil -hashfile "%ROOT%\pyproject.toml" SHA256 ^| findstr /v ":"') do set "WANTED=%%H"
set "INSTALLED=none"
if exist "%MARKER%" set /p INSTALLED=<"%MARKER%"

set "PY="
where py >nul 2>nul && py -3 -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)" >nul 2>nul && set "PY=py -3"
if not defined PY (
  where python >nul 2>nul && python -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)" >nul 2>nul && set "PY=python"
)

if "%~1"=="--dry-run" (
  echo source:  %ROOT%
  echo venv:    %VENV%
  if defined PY (echo python:  !PY!) else (echo python:  none found ^(Python 3.10 or newer is needed^))
  if "!INSTALLED!"=="!WANTED!" (echo install: not needed) else (echo install: needed; log: %LOG%)
  echo start:   "%VENV%\Scripts\pythonw.exe" "%ROOT%\main.py"
  exit /b 0
)

if not "!INSTALLED!"=="!WANTED!" (
  if not defined PY (
    set "WHY=no Python 3.10 or newer was found"
    set "TODO=install Python 3.10+ from python.org (tick 'Add python.exe to PATH'), then start again"
    goto :fail
  )
  if not exist "%DATA%\logs" mkdir "%DATA%\logs"
  echo First start: installing Image Alchemy into %VENV%.
  echo This downloads PyTorch ^(about 2.5 GB^) and takes a few minutes; progress is in %LOG%
  echo --- %DATE% %TIME% installing with !PY!>>"%LOG%"
  if not exist "%VENV%\Scripts\python.exe" (
    !PY! -m venv "%VENV%" >>"%LOG%" 2>&1
    if errorlevel 1 (
      set "WHY=could not make a virtual environment in %VENV%"
      set "TODO=reinstall Python from python.org, then start again"
      goto :fail
    )
  )
  "%VENV%\Scripts\python.exe" -m pip install --upgrade pip >>"%LOG%" 2>&1
  if errorlevel 1 echo note: could not upgrade pip; installing with the venv's own pip
  "%VENV%\Scripts\python.exe" -m pip install -e "%ROOT%" >>"%LOG%" 2>&1
  if errorlevel 1 (
    set "WHY=pip could not install the app"
    set "TODO=check the internet connection and free disk space (about 6 GB), or delete %VENV%"
    goto :fail
  )
  >"%MARKER%" echo !WANTED!
  echo Installed. Starting Image Alchemy...
)
start "" "%VENV%\Scripts\pythonw.exe" "%ROOT%\main.py" %*
exit /b 0

:fail
echo.
echo Image Alchemy could not be installed: !WHY!
echo What to do: !TODO!
echo The full log is %LOG%; after fixing the cause, start Image Alchemy again.
pause
exit /b 1
